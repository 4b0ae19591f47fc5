pragma solidity ^0.4.23;

contract Crowdsale {
    address public owner;
    uint256 public rate = 500;
    mapping(address => uint256) public balances;

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }

    constructor() public {
        owner = msg.sender;
    }

    function setRate(uint256 newRate) public onlyOwner {
        rate = newRate;
    }

    function () public payable {
        uint256 tokens = msg.value * rate; // expect: front-running
        balances[msg.sender] += tokens;
    }

    function finalize() public onlyOwner {
        owner.transfer(address(this).balance);
    }
}
