pragma solidity ^0.5.0;

contract Timelock {
    address payable public beneficiary;
    uint256 public releaseTime;

    constructor(address payable b, uint256 t) public payable {
        beneficiary = b;
        releaseTime = t;
    }

    function release() public {
        require(now >= releaseTime);
        beneficiary.transfer(address(this).balance);
    }
}
