pragma solidity ^0.4.24;

// The constructor keyword cannot drift from the contract name.
contract PyramidFund {
    address private creator;
    uint256 public fees;

    constructor() public {
        creator = msg.sender;
    }

    function () public payable {
        fees += msg.value / 10;
    }

    function collectFees() public {
        require(msg.sender == creator);
        creator.transfer(fees);
        fees = 0;
    }
}
