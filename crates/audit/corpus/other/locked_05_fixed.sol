pragma solidity ^0.5.7;

// The beneficiary can take the donations out.
contract Donations {
    mapping(address => uint256) public donated;
    address payable public beneficiary;

    constructor() public {
        beneficiary = msg.sender;
    }

    function donate() public payable {
        donated[msg.sender] += msg.value;
    }

    function release() public {
        require(msg.sender == beneficiary);
        beneficiary.transfer(address(this).balance);
    }
}
