pragma solidity ^0.5.0;

// changeOwner checks the new owner but not the caller.
contract Ownable {
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }

    function changeOwner(address newOwner) public {
        require(newOwner != address(0));
        owner = newOwner; // expect: access-control
    }

    function withdraw() public onlyOwner {
        msg.sender.transfer(address(this).balance);
    }

    function() external payable {}
}
